"""Delivery: what each viewer gets — codec, quality rung, keyframes, network conditions."""
