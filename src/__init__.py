"""Facial emotion analytics, in layer packages: config and common, engine, analytics and
training, streams, app, api and cli (README, "Where things live")."""
