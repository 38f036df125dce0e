"""Entropy models: learned densities for training, frozen integer tables for coding."""
from lcodec.bitstream.tables import PRECISION, CodingTables
from lcodec.entropy.factorized import FactorizedPrior
from lcodec.entropy.gaussian import GaussianConditional, gaussian_tables, indexes_to_scales, scale_table
from lcodec.entropy.integer_net import IntegerConv, IntegerIndexNet, IntegerNetwork, index_synthesis
from lcodec.entropy.mixture import (
    GaussianMixtureConditional,
    MixtureParams,
    component_bank,
    mix_counts,
    quantize_weights,
)

__all__ = [
    "CodingTables",
    "FactorizedPrior",
    "GaussianConditional",
    "GaussianMixtureConditional",
    "IntegerConv",
    "IntegerIndexNet",
    "IntegerNetwork",
    "MixtureParams",
    "PRECISION",
    "component_bank",
    "gaussian_tables",
    "index_synthesis",
    "indexes_to_scales",
    "mix_counts",
    "quantize_weights",
    "scale_table",
]
