"""The aws-batch backend: steps as AWS Batch jobs in their image, files staged through S3.

``backend.py`` submits, polls, resubmits and cancels; ``staging.py`` and ``collect.py`` move files
between the project and the bucket (verified both ways); ``stage.py`` is the stdlib-only job side
that runs inside the user's container; ``status.py`` reads DescribeJobs replies; ``settings.py``
reads the profile. Nothing here is imported until a run uses an aws-batch profile.
"""
