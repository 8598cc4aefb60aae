//! The jobsmith dashboard.
