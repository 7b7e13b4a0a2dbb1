"""vae_utils.core.direct: a compiled tf.function called with flat tensors gives the tf.function's outputs."""

import numpy as np
import tensorflow as tf

from vae_utils.core.direct import direct


@tf.function(jit_compile=True)
def _epoch_like(x, theta, slots, h):
    return theta * h["a"] + tf.reduce_sum(x), [s + h["b"] for s in slots], {"n": tf.shape(x)[0]}


def _args(rows=3):
    x = tf.reshape(tf.range(rows * 2, dtype=tf.float32), [rows, 2])
    return x, tf.constant([1.0, 2.0]), [tf.ones([2]), tf.zeros([2])], {"a": tf.constant(2.0), "b": tf.constant(0.5)}


def _assert_same(a, b):
    tf.nest.assert_same_structure(a, b)
    for u, v in zip(tf.nest.flatten(a), tf.nest.flatten(b), strict=True):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


def test_a_direct_call_returns_the_tf_functions_outputs_in_their_structure():
    call = direct(_epoch_like)
    for _ in range(2):  # the first call traces, the second goes through the flat call
        _assert_same(call(*_args()), _epoch_like(*_args()))


def test_a_direct_call_traces_again_for_new_shapes():
    call = direct(_epoch_like)
    call(*_args(3))
    _assert_same(call(*_args(5)), _epoch_like(*_args(5)))


def test_under_a_gradient_tape_the_call_goes_through_the_tf_function():
    call = direct(tf.function(lambda x: x * x))
    x = tf.constant(3.0)
    call(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = call(x)
    assert float(tape.gradient(y, x)) == 6.0
