// swift-tools-version:6.0
import PackageDescription

// No packages beyond the Swift toolchain and the system libcurl: PID 1 stays small and the
// build needs nothing but Debian's packages.
let package = Package(
    name: "kube-haproxy",
    products: [
        .executable(name: "kube-haproxy", targets: ["Supervisor"]),
        .executable(name: "kube-haproxy-watcher", targets: ["Watcher"]),
        .library(name: "Jinja", targets: ["Jinja"]),
    ],
    targets: [
        .target(name: "CSystem"),
        .target(name: "Shared", dependencies: ["CSystem"]),
        .target(name: "Jinja", dependencies: ["Shared"]),
        .executableTarget(name: "Supervisor", dependencies: ["Shared", "CSystem"]),
        .executableTarget(name: "Watcher", dependencies: ["Shared", "Jinja"]),
        .testTarget(name: "SharedTests", dependencies: ["Shared"]),
        .testTarget(name: "JinjaTests", dependencies: ["Jinja", "Shared"], exclude: ["Fixtures"]),
        // Real parts for integration tests: binaries, backends, the supervisor, free ports.
        .target(name: "IntegrationSupport", dependencies: ["Shared"], path: "Tests/IntegrationSupport", exclude: ["backend.py"]),
        .testTarget(name: "SupervisorTests", dependencies: ["Shared", "IntegrationSupport"]),
    ]
)
