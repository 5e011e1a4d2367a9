"""Audit trail: who changed what, from what to what"""
