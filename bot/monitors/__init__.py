"""The alert monitors: health and lag polls on a scheduler, Kubernetes watches."""
