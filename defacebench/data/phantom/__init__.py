"""The synthetic clinical-looking head phantom behind the sample dataset.

Layers, bottom up:

- :mod:`.shapes`: distance-based primitives (ellipsoids, tubes along polylines) on a voxel grid;
- :mod:`.template`: pydeface's averaged T1 head on the phantom's base grid, its landmarks;
- :mod:`.anatomy`: tissue labels (skin, fat, muscle, brain, CSF, skull, facial skeleton, teeth,
  eyes, sinuses and airway, ears, neck and shoulders) and their CT (HU) and T1-like values;
- :mod:`.identity`: per-subject shape (scale and displacement bumps) and per-acquisition pose;
- :mod:`.holder`: the head cradle and table of a CT scanner;
- :mod:`.scanner`: one acquisition's grid (matrix, slice thickness, gantry tilt), sampling of the
  posed, warped anatomy onto it, noise, dental metal streaks, MRI bias field and Rician noise.
"""
