"""The MLP autoencoder's layer widths, without torch: model.py builds its layers from them and
numpy_encoder.py checks a model file's weights against them."""

from __future__ import annotations


def mlp_sizes(d: int, hidden, bits: int, width: int, output: str) -> tuple[list[int], list[int]]:
    """(encoder widths [d, *hidden, width], decoder widths) for items of d values, codes of `bits`
    bits whose bottleneck takes `width` encoder outputs. The decoder mirrors the encoder, except
    for bags of words (output "multinomial"): one softmax layer from the code to the vocabulary,
    VDSH's and NASH's decoder (the code must carry the topic; a hidden layer of the vocabulary's
    width would cost as much as the encoder again)."""
    hidden = [int(h) for h in hidden]
    back = [] if output == "multinomial" else hidden[::-1]
    return [d, *hidden, width], [bits, *back, d]
