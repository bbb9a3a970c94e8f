// Loads mvae exports in the real @magenta/music client and reports what it computes.
//
//   node judge.js JOBS.json OUT.json
//
// JOBS.json: [{"url": "http://127.0.0.1:PORT/name", "inputs": [B][T][D], "z": [B][Z],
//              "depths": [d0, d1, ...]}, ...]
// OUT.json:  [{"mu": [B][Z], "tokens": [B][T][S], "error": null | "message"}, ...]
// mu: MusicVAE.encodeTensors (the encoder's mean, as magenta.js encodes); tokens: the argmax of
// each stream's one-hot block of MusicVAE.decodeTensors(z, temperature 0) (greedy decoding).
'use strict';
const fs = require('fs');
const tf = require('@tensorflow/tfjs');
const mvae = require('@magenta/music/node/music_vae');

async function judge(job) {
  const model = new mvae.MusicVAE(job.url);
  try {
    await model.initialize();
    const inputs = tf.tensor3d(job.inputs);
    const mu = await model.encodeTensors(inputs, undefined);
    const z = tf.tensor2d(job.z);
    const out = await model.decodeTensors(z, 0, undefined);
    const parts = job.depths.length > 1 ? tf.split(out, job.depths, 2) : [out];
    const streams = parts.map((p) => p.argMax(2).arraySync());  // [S][B][T]
    const tokens = streams[0].map((row, b) => row.map((_, t) => streams.map((s) => s[b][t])));
    const result = {mu: mu.arraySync(), tokens: tokens, error: null};
    tf.dispose([inputs, mu, z, out, ...parts]);
    return result;
  } catch (e) {
    return {mu: null, tokens: null, error: String(e && e.message || e).split('\n')[0]};
  } finally {
    model.dispose();
  }
}

async function main() {
  const [jobsPath, outPath] = process.argv.slice(2);
  const jobs = JSON.parse(fs.readFileSync(jobsPath, 'utf8'));
  const results = [];
  for (const job of jobs) {
    results.push(await judge(job));
  }
  fs.writeFileSync(outPath, JSON.stringify(results));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
