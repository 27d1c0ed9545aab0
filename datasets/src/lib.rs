//! Datasets for qbench (work in progress).
