"""Tests of the sealing core (seals/)."""
