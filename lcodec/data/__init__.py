"""Datasets for compressed-domain learning: train on codec latents instead of pixels."""
from lcodec.data.collate import SizeBuckets, latent_crop, pad_collate
from lcodec.data.sharded import EncodedDataset, encode_folder
from lcodec.data.latents import (CACHE_VERSION, LatentCacheManifest, LatentCodec, LatentDataset, StaleCacheWarning,
                                 latent_stats)

__all__ = ["CACHE_VERSION", "LatentCacheManifest", "LatentCodec", "LatentDataset", "StaleCacheWarning", "latent_stats",
           "SizeBuckets", "latent_crop", "pad_collate", "EncodedDataset", "encode_folder"]
