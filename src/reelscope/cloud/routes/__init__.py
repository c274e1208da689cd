"""The API's routes, a Powertools Router per resource; cloud/api.py assembles them."""
