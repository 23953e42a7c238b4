package bus

// VersionBelow is versionBelow, for the tests' own version checks.
var VersionBelow = versionBelow
