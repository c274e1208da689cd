"""The serverless side: Lambda handlers' core (jobs), the REST API, URL ingest, the Lambda runtime glue."""
