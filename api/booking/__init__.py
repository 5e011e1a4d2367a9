"""Booking checks"""
