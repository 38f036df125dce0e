"""Entropy models: learned densities for training, frozen integer tables for coding."""
from lcodec.bitstream.tables import PRECISION, CodingTables
from lcodec.entropy.factorized import FactorizedPrior
from lcodec.entropy.gaussian import GaussianConditional, gaussian_tables, indexes_to_scales, scale_table
from lcodec.entropy.integer_net import IntegerConv, IntegerIndexNet, IntegerNetwork, index_synthesis

__all__ = [
    "CodingTables",
    "FactorizedPrior",
    "GaussianConditional",
    "IntegerConv",
    "IntegerIndexNet",
    "IntegerNetwork",
    "PRECISION",
    "gaussian_tables",
    "index_synthesis",
    "indexes_to_scales",
    "scale_table",
]
