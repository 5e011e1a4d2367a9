"""Change feed"""
