"""Live updates: a change stream applied to the in-model index (issue 5).

    events      the versioned change events (JSON) and their validation
    sources     `Source` interface, the embedded local log (writer + source)
    redis_source  Redis Streams with a consumer group
    deadletter  rejected records with their reason
    ingestor    the loop: validate, split, apply, snapshot, recover; freshness
    reference   pure-Python replay under the version semantics (test oracle)
"""
