"""Behaviour capture and learned recommendations for django-oscar shops."""
