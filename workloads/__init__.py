"""Evaluation workloads shared by the benches and the offline training tools: public data sets, the
mixed cascade workload and the graders that score answers against gold. No service imports this."""
