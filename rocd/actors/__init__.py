"""Actors: state, lifetimes, supervision and orchestration."""
