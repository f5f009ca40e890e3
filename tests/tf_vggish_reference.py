"""Build VGGish with TF-slim, random weights, save V1 and V2 checkpoints and its output on an input.

Run by tests/test_backbones.py in its own process (TensorFlow is an optional test extra).
usage: python tf_vggish_reference.py OUT_DIR
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_slim as slim  # noqa: E402
from tensorflow.core.protobuf import saver_pb2  # noqa: E402

tf1 = tf.compat.v1
tf1.disable_eager_execution()


def vggish_slim():
    """The TF-slim VGGish: 3x3 SAME convs and 2x2 SAME pools, ReLU after every layer."""
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_initializer=tf1.truncated_normal_initializer(stddev=0.05),
                        biases_initializer=tf1.random_uniform_initializer(-0.1, 0.1),
                        activation_fn=tf.nn.relu), \
            slim.arg_scope([slim.conv2d], kernel_size=[3, 3], stride=1, padding="SAME"), \
            slim.arg_scope([slim.max_pool2d], kernel_size=[2, 2], stride=2, padding="SAME"), \
            tf1.variable_scope("vggish"):
        features = tf1.placeholder(tf.float32, shape=(None, 96, 64), name="input_features")
        net = tf.reshape(features, [-1, 96, 64, 1])
        net = slim.conv2d(net, 64, scope="conv1")
        net = slim.max_pool2d(net, scope="pool1")
        net = slim.conv2d(net, 128, scope="conv2")
        net = slim.max_pool2d(net, scope="pool2")
        net = slim.repeat(net, 2, slim.conv2d, 256, scope="conv3")
        net = slim.max_pool2d(net, scope="pool3")
        net = slim.repeat(net, 2, slim.conv2d, 512, scope="conv4")
        net = slim.max_pool2d(net, scope="pool4")
        net = slim.flatten(net)
        net = slim.repeat(net, 2, slim.fully_connected, 4096, scope="fc1")
        net = slim.fully_connected(net, 128, scope="fc2")
        return features, tf.identity(net, name="embedding")


def main(out: str) -> None:
    for sub in ("v1", "v2"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    x = np.random.default_rng(0).normal(-2, 1.5, (3, 96, 64)).astype(np.float32)
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        features, embedding = vggish_slim()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            y = sess.run(embedding, feed_dict={features: x})
            tf1.train.Saver(write_version=saver_pb2.SaverDef.V1).save(sess, os.path.join(out, "v1", "vggish_model.ckpt"))
            tf1.train.Saver(write_version=saver_pb2.SaverDef.V2).save(sess, os.path.join(out, "v2", "vggish_model.ckpt"))
    np.savez(os.path.join(out, "io.npz"), x=x, y=y)


if __name__ == "__main__":
    main(sys.argv[1])
