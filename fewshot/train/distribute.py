"""Where training runs: one device, all GPUs of a machine, or several machines.

``make_strategy`` picks the ``tf.distribute`` strategy; ``fit`` drives the
epochs, with a loop written out for ``MultiWorkerMirroredStrategy``, which
Keras 3's ``Model.fit`` cannot drive.
"""

from __future__ import annotations

import numpy as np


def make_strategy(name: str):
    """``default`` (one device), ``mirrored`` (all GPUs here) or ``multiworker`` (``TF_CONFIG``)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; expected default, mirrored or multiworker")


def _fit_default(model, dataset, *, strategy, epochs, initial_epoch, steps_per_epoch, callbacks, verbose):
    model.fit(
        dataset,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the dataset draws its own random crops; Keras ignores (and warns about) shuffle for a Dataset
    )


def _fit_multiworker(model, dataset, *, strategy, epochs, initial_epoch, steps_per_epoch, callbacks, verbose):
    """The fit loop written out with ``strategy.run``: Keras 3's ``fit`` cannot drive
    ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585)."""
    import keras
    import tensorflow as tf

    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    global_batch = dataset.element_spec[1].shape[0]

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            per_example = model.loss.call(y, model(x, training=True))
            loss = tf.reduce_sum(per_example) / global_batch
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def train_step(it):
        return strategy.reduce("SUM", strategy.run(replica_step, args=next(it)), axis=None)

    cbs = keras.callbacks.CallbackList(callbacks, model=model)
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        bar = keras.utils.Progbar(steps_per_epoch, verbose=verbose)
        losses = []
        for step in range(steps_per_epoch):
            losses.append(float(train_step(iterator)))
            bar.update(step + 1, [("loss", losses[-1])])
        logs = {"loss": float(np.mean(losses))}
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end()


def task_id(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(getattr(resolver, "task_id", 0) or 0) if resolver is not None else 0


def fit(model, dataset, *, strategy, **kwargs):
    """``Model.fit`` for one machine; the written-out loop for several."""
    import tensorflow as tf

    run = _fit_multiworker if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else _fit_default
    run(model, dataset, strategy=strategy, **kwargs)
