"""API keys and roles"""
