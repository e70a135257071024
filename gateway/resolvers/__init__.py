"""Resolvers, one module per service: each returns the Ariadne bindables it defines."""
