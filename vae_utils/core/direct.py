"""Calling a compiled ``tf.function`` many times without its Python dispatch.

    run_epoch = direct(tf.function(epoch, jit_compile=True))
    out = run_epoch(x_train, theta, [m, v], {"learning_rate": lr, ...})   # as the tf.function, same outputs

A ``tf.function`` call binds its arguments to the traced signature in Python before it runs the
graph: with the fast path's ~20 tensor arguments in lists and a dict, that costs ~0.6 ms of CPU per
call here (a third more than the batch-256 epoch's four updates; ~7 % of a batch-32 epoch), while
the graph call itself costs ~0.04 ms. ``direct`` traces through the ``tf.function`` once per
signature (the shapes and dtypes of the flattened arguments), then calls the traced function with
the flat tensors and packs its outputs into their structure: the same function, the same outputs.

It uses ``ConcreteFunction._inference_function.call_flat``, which is what ``ConcreteFunction``
itself calls in eager mode when no gradient tape is recording. That is TensorFlow's internal API:
when it is missing (another TensorFlow version) or a tape is recording, the call goes through the
``tf.function`` as usual.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from .. import xlacache

__all__ = ["direct"]


def direct(function, graph=None):
    """``function`` (a ``tf.function`` of tensors, lists and dicts of tensors) with a cheaper call.

    ``graph``: the graph's name for ``xlacache.stable_names`` (then its trace names the same functions
    in every process, and a compiled program in the XLA cache is found whatever was traced before)."""
    traced: dict = {}

    def call(*args):
        flat = tf.nest.flatten(args)
        key = tuple((t.dtype, tuple(t.shape)) for t in flat)
        if key not in traced:
            with xlacache.stable_names((graph, key)) if graph is not None else contextlib.nullcontext():
                traced[key] = _flat_caller(function, args)
        fast = traced[key]
        if fast is None or not tf.executing_eagerly() or _tape_recording():
            return function(*args)
        concrete, call_flat = fast
        return tf.nest.pack_sequence_as(concrete.structured_outputs, call_flat(*flat, *concrete.captured_inputs))

    call.python_function = function  # the tf.function itself, for what needs it (tracing, compiler IR)
    return call


def _flat_caller(function, args):
    """(concrete function, its flat call) of ``function`` traced for ``args``; None without the internal API."""
    concrete = function.get_concrete_function(*args)
    call_flat = getattr(getattr(concrete, "_inference_function", None), "call_flat", None)
    return None if call_flat is None else (concrete, call_flat)


def _tape_recording() -> bool:
    """Whether a gradient tape may be recording (then the ``tf.function`` must see the call)."""
    return _could_record is None or _could_record()


try:
    from tensorflow.python.eager.record import could_possibly_record as _could_record
except ImportError:  # pragma: no cover - another TensorFlow layout: always go through the tf.function
    _could_record = None
