//! The qbench integer inference engine (work in progress: see issue 3).
