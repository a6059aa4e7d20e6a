// Runs a TF.js graph model offline on tfjs-backend-cpu: the reference the ONNX conversion is
// tested against (tests/test_tfjs_onnx.py). Needs NODE_PATH pointing at a node_modules folder with
// @tensorflow/tfjs-core, -converter and -backend-cpu (scripts/setup.sh installs them).
// Usage: node tfjs_reference.cjs MODEL.json INPUT.f32 N,H,W,C OUTPUT_NODE OUT.f32
// Prints the output's shape as JSON; writes its values as little-endian float32.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');

function artifacts(modelPath) {
  const model = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const dir = path.dirname(modelPath);
  const shards = model.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p))));
  const data = Buffer.concat(shards);
  return {
    modelTopology: model.modelTopology,
    format: model.format,
    generatedBy: model.generatedBy,
    convertedBy: model.convertedBy,
    signature: model.signature,
    userDefinedMetadata: model.userDefinedMetadata,
    weightSpecs: model.weightsManifest.flatMap((g) => g.weights),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
  };
}

async function main() {
  const [modelPath, inputPath, shapeText, outputNode, outPath] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const graph = await converter.loadGraphModel(tf.io.fromMemory(artifacts(modelPath)));
  const raw = fs.readFileSync(inputPath);
  const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const input = tf.tensor(values, shapeText.split(',').map(Number), 'float32');
  const output = graph.execute(input, outputNode);
  const result = await output.data();
  fs.writeFileSync(outPath, Buffer.from(result.buffer, result.byteOffset, result.byteLength));
  process.stdout.write(JSON.stringify(output.shape) + '\n');
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exit(1); });
