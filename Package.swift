// swift-tools-version:6.0
import PackageDescription

// No packages beyond the Swift toolchain and the system libcurl: PID 1 stays small and the
// build needs nothing but Debian's packages.
// Release builds specialise the generic JSON reader for the template engine's value
// type across the module boundary, and drop the run-time exclusivity checks on the engine's
// reference-typed lists and dicts (measured: together about twice as fast to read a large context).
let crossModule: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
let engine: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "kube-haproxy",
    products: [
        .executable(name: "kube-haproxy", targets: ["Supervisor"]),
        .executable(name: "kube-haproxy-watcher", targets: ["Watcher"]),
        .library(name: "Jinja", targets: ["Jinja"]),
    ],
    targets: [
        .target(name: "CSystem"),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // The order-preserving JSON reader and writer: the control protocol's and the template engine's.
        .target(name: "JSON", swiftSettings: crossModule),
        .target(name: "Shared", dependencies: ["JSON", "CSystem"], swiftSettings: crossModule),
        // The template engine links nothing else of the project.
        .target(name: "Jinja", dependencies: ["JSON"], swiftSettings: engine),
        // haproxy.cfg's sections and server lines, and what HAProxy can change without a reload.
        .target(name: "HAProxyConfig"),
        .executableTarget(name: "Supervisor", dependencies: ["JSON", "Shared", "CSystem", "HAProxyConfig"]),
        .executableTarget(name: "Watcher", dependencies: ["JSON", "Shared", "Jinja", "CCurl", "CSystem"], swiftSettings: crossModule),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "SharedTests", dependencies: ["JSON", "Shared"]),
        .testTarget(name: "HAProxyConfigTests", dependencies: ["HAProxyConfig"], exclude: ["Fixtures"]),
        .testTarget(name: "JinjaTests", dependencies: ["Jinja", "JSON"], exclude: ["Fixtures", "generate-expected.py", "compare-random.py"]),
        // Real parts for integration tests: binaries, backends, the supervisor, free ports.
        .target(name: "IntegrationSupport", dependencies: ["JSON", "Shared", "CCurl"], path: "Tests/IntegrationSupport", exclude: ["backend.py"]),
        .testTarget(name: "SupervisorTests", dependencies: ["JSON", "Shared", "Supervisor", "IntegrationSupport"]),
        // The watcher end to end: real etcd, the real supervisor and watcher binaries, real HAProxy.
        .testTarget(name: "WatcherTests", dependencies: ["JSON", "Shared", "Jinja", "Watcher", "IntegrationSupport"], exclude: ["Fixtures"]),
    ]
)
