"""Build, push and deploy the image to SageMaker real-time endpoints, with autoscaling."""
