"""The autoencoder hasher: binary codes from a deep autoencoder's bottleneck.

    from semhash.hashing.autoencoder import AEHasher   # the Hasher (hasher.py); options: TrainConfig's

One concept a module, from the top: hasher (the AEHasher), members (models trained apart, kept as
one), train (the loop and its processes), checkpoints, losses, validation (the held-out split and
model selection), config (TrainConfig), graph (the k-NN graph), model (ModelConfig, Autoencoder),
regularizers, registry (the bottlenecks by name), bottlenecks (their contract and the four here),
code_rules (their codes, without torch), distributed (DDP plumbing); beside the hasher,
numpy_encoder (an MLP's model file read without torch: what load_hasher gives back for one).

AEHasher is imported on first use: the registry's names come without torch (the command line's
start-up imports the registry, never torch).
"""


def __getattr__(name: str):
    if name == "AEHasher":
        from .hasher import AEHasher

        return AEHasher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AEHasher"]
