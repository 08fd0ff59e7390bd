//! The importers of the `convo` binary as a library, so fuzz targets and tests can
//! drive them directly: the JSON Lines exchange format of `convo export` /
//! `convo import`, and the SCOUT (legacy Python system) importer.

pub mod exchange;
pub mod scout;
