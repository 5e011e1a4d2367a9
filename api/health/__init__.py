"""Health checks"""
