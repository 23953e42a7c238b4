package bus

// VersionBelow is versionBelow, for the tests' own version checks.
var VersionBelow = versionBelow

// Transient is transient, for the table of real JetStream errors.
var Transient = transient
