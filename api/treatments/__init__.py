"""Treatments: the catalogue, its evidence, regulatory facts and decisions"""
