"""The runbooks, one module each: parameters, what the planner reads, the plan, and the steps' arguments."""
