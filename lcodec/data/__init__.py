"""Datasets for compressed-domain learning: train on codec latents instead of pixels."""
from lcodec.data.latents import (CACHE_VERSION, LatentCacheManifest, LatentCodec, LatentDataset, StaleCacheWarning,
                                 latent_stats)

__all__ = ["CACHE_VERSION", "LatentCacheManifest", "LatentCodec", "LatentDataset", "StaleCacheWarning", "latent_stats"]
