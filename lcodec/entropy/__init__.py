"""Entropy models: learned densities for training, frozen integer tables for coding."""
from lcodec.bitstream.tables import PRECISION, CodingTables
from lcodec.entropy.factorized import FactorizedPrior

__all__ = ["CodingTables", "FactorizedPrior", "PRECISION"]
