//! Benchmark file formats: one reader and one writer per layout of
//! `shared/design/datasets.md`, the pickle and `.mat` codecs they share,
//! and the coordinate conventions of each, in one place.
