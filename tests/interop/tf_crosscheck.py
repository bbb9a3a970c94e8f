"""Cross-check of mvae_jax/interop/tf_checkpoint.py with TensorFlow itself (not a test dependency).

Run with any Python that has TensorFlow and NumPy (mvae-jax need not be installed):
    python tests/interop/tf_crosscheck.py EXPORT_DIR
where EXPORT_DIR is an `mvae export --format magenta-tf` folder. Checks: (1) TensorFlow reads what we
write, including an index of several table blocks; (2) tf.compat.v1.train.Saver (how Magenta
restores) restores the export by name; (3) we read what TF's Saver writes; (4) a TF2
tf.train.Checkpoint opens, its string object graph is refused on read only.
Last run (TensorFlow 2.21.0, CPU): all four pass; see docs/interop.md.
"""
import os, sys, tempfile, numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from mvae_jax.interop import tf_checkpoint as tfc
import tensorflow as tf
C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "magenta", "checkpoints")
d = tempfile.mkdtemp()
# 1. TF reads what we write (fixture values + 12000 extra variables: a multi-block index)
vals = tfc.Reader(os.path.join(C, "hierdec-trio_16bar_tiny")).read_all()
rng = np.random.default_rng(1)
vals |= {f"extra/{rng.bytes(24).hex()}/v{i:05d}": rng.standard_normal(i % 4).astype(np.float32) for i in range(12000)}
vals["big"] = rng.standard_normal((1500, 1000)).astype(np.float32)
tfc.write(os.path.join(d, "a", "model.ckpt-5"), vals)
r = tf.train.load_checkpoint(os.path.join(d, "a"))
assert set(r.get_variable_to_shape_map()) == set(vals)
for k, v in vals.items():
  np.testing.assert_array_equal(r.get_tensor(k), v)
print("1 ok: TF reads", len(vals), "variables, index", os.path.getsize(os.path.join(d, "a", "model.ckpt-5.index")), "bytes")
# 2. TF1 Saver (Magenta's restore path) restores our magenta-tf export by name
exp = sys.argv[1]
r2 = tfc.Reader(exp)
g = tf.Graph()
with g.as_default():
  tvars = {}
  for n, e in r2.entries.items():
    tvars[n] = tf.compat.v1.get_variable(n, shape=e.shape, dtype=tf.as_dtype(e.dtype), initializer=tf.compat.v1.zeros_initializer())
  saver = tf.compat.v1.train.Saver()
  with tf.compat.v1.Session() as sess:
    saver.restore(sess, tf.train.latest_checkpoint(exp))
    for n, v in tvars.items():
      np.testing.assert_array_equal(sess.run(v), r2.read(n))
print("2 ok: tf.compat.v1.train.Saver restored", len(tvars), "variables of", exp)
# 3. we read what TF writes (V1 Saver, several variables) 
g = tf.Graph()
with g.as_default():
  a = tf.compat.v1.get_variable("encoder/mu/kernel", initializer=rng.standard_normal((7, 3)).astype(np.float32))
  b = tf.compat.v1.get_variable("global_step", initializer=np.int64(42))
  c = tf.compat.v1.get_variable("big", initializer=rng.standard_normal((300, 200)).astype(np.float32))
  saver = tf.compat.v1.train.Saver()
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    saver.save(sess, os.path.join(d, "b", "model.ckpt"), global_step=42)
    want = {v.op.name: sess.run(v) for v in (a, b, c)}
got = tfc.Reader(os.path.join(d, "b")).read_all()
for k, v in want.items():
  np.testing.assert_array_equal(got[k], v)
print("3 ok: we read a checkpoint TF's Saver wrote:", sorted(got))
# 4. a TF2 tf.train.Checkpoint (has a string object graph): readable, the string entry refused on read
ck = tf.train.Checkpoint(v=tf.Variable(rng.standard_normal((4, 4)).astype(np.float32)))
p = ck.save(os.path.join(d, "c", "ckpt"))
rr = tfc.Reader(p)
print("4:", sorted(rr.entries))
try:
  rr.read("_CHECKPOINTABLE_OBJECT_GRAPH")
except tfc.CheckpointError as e:
  print("   refused:", e)
print("   v:", np.allclose(rr.read("v/.ATTRIBUTES/VARIABLE_VALUE"), ck.v.numpy()))
