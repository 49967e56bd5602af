"""Inference with trained runs: decoding, text generation, translation, image prediction, BLEU."""
