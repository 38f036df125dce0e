"""Datasets for compressed-domain learning: train on codec latents instead of pixels."""
from lcodec.data.latents import CACHE_VERSION, LatentCacheManifest, LatentCodec, LatentDataset, StaleCacheWarning

__all__ = ["CACHE_VERSION", "LatentCacheManifest", "LatentCodec", "LatentDataset", "StaleCacheWarning"]
