"""The training core: what a run is and how it trains.

``config`` (``TrainConfig``, validated and frozen), ``data`` (the dataset registry and loading),
``model`` (encoder, decoder, ``Sampling``), ``objective`` (the negative ELBO that training
minimises), ``optimizers`` (the optimizer registry both engines read) and ``schedules`` (learning
rate and KL weight over updates), ``draws`` (an epoch's shuffle, binarization and noise, the same
for both engines), ``training`` (``train``, ``train_seeds``; the Keras engine), ``fastpath`` (the
MLP's compiled epoch, seeds stacked), ``direct`` (calling a compiled epoch without
``tf.function``'s Python dispatch), ``result`` (``TrainResult`` and how both engines book a
run), ``evaluation`` (held-out ELBO, IWAE NLL, active units), ``noise`` (the
gradient-noise scale). Nothing here imports the rest of the toolkit but ``cpuslots`` (a training
process takes a CPU slot).
"""
