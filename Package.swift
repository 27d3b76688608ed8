// swift-tools-version:6.0
import PackageDescription

// No packages beyond the Swift toolchain and the system libcurl: PID 1 stays small and the
// build needs nothing but Debian's packages.
// Release builds specialise the generic JSON reader in Shared for the template engine's value
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
        .target(name: "Shared", dependencies: ["CSystem"], swiftSettings: crossModule),
        .target(name: "Jinja", dependencies: ["Shared"], swiftSettings: engine),
        // haproxy.cfg's sections and server lines, and what HAProxy can change without a reload.
        .target(name: "HAProxyConfig"),
        .executableTarget(name: "Supervisor", dependencies: ["Shared", "CSystem", "HAProxyConfig"]),
        .executableTarget(name: "Watcher", dependencies: ["Shared", "Jinja", "CCurl", "CSystem"], swiftSettings: crossModule),
        .testTarget(name: "SharedTests", dependencies: ["Shared"]),
        .testTarget(name: "HAProxyConfigTests", dependencies: ["HAProxyConfig"], exclude: ["Fixtures"]),
        .testTarget(name: "JinjaTests", dependencies: ["Jinja", "Shared"], exclude: ["Fixtures", "generate-expected.py", "compare-random.py"]),
        // Real parts for integration tests: binaries, backends, the supervisor, free ports.
        .target(name: "IntegrationSupport", dependencies: ["Shared"], path: "Tests/IntegrationSupport", exclude: ["backend.py"]),
        .testTarget(name: "SupervisorTests", dependencies: ["Shared", "IntegrationSupport"]),
        // The watcher end to end: real etcd, the real supervisor and watcher binaries, real HAProxy.
        .testTarget(name: "WatcherTests", dependencies: ["Shared", "Jinja", "IntegrationSupport"], exclude: ["Fixtures"]),
    ]
)
