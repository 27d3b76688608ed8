// The diff and the secret masking of `kube-haproxy diff`, function by function.
@testable import Supervisor
import XCTest

final class ConfigDiffTests: XCTestCase {
    /// The length of a longest common subsequence, by the textbook table: the number of lines a
    /// shortest edit script keeps.
    private func longestCommon(_ a: [String], _ b: [String]) -> Int {
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                table[i][j] = a[i] == b[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
            }
        }
        return table[0][0]
    }

    func testEditsTurnTheOldLinesIntoTheNewWithAsFewChangesAsPossible() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<400 {
            let a = (0..<Int.random(in: 0...14, using: &generator)).map { _ in ["a", "b", "c", "d"].randomElement(using: &generator) ?? "a" }
            let b = (0..<Int.random(in: 0...14, using: &generator)).map { _ in ["a", "b", "c", "e"].randomElement(using: &generator) ?? "a" }
            let edits = UnifiedDiff.edits(a, b)
            let old = edits.compactMap { edit -> String? in
                switch edit { case .same(let line), .removed(let line): return line; case .added: return nil }
            }
            let new = edits.compactMap { edit -> String? in
                switch edit { case .same(let line), .added(let line): return line; case .removed: return nil }
            }
            XCTAssertEqual(old, a)
            XCTAssertEqual(new, b)
            XCTAssertEqual(edits.filter { if case .same = $0 { return true } else { return false } }.count, longestCommon(a, b), "\(a) -> \(b)")
        }
    }

    func testPastTheLimitEverythingIsReplaced() {
        XCTAssertEqual(UnifiedDiff.edits(["a", "x", "y", "b"], ["a", "p", "q", "b"], limit: 1),
                       [.same("a"), .removed("x"), .removed("y"), .added("p"), .added("q"), .same("b")])
    }

    func testHunksHaveThreeLinesOfContextAndDiffUStyleHeaders() {
        let old = (1...20).map { "line \($0)" }
        var new = old
        new[9] = "line ten"
        new.append("line 21")
        XCTAssertEqual(UnifiedDiff.render(old, new, oldName: "old", newName: "new"), """
            --- old
            +++ new
            @@ -7,7 +7,7 @@
             line 7
             line 8
             line 9
            -line 10
            +line ten
             line 11
             line 12
             line 13
            @@ -18,3 +18,4 @@
             line 18
             line 19
             line 20
            +line 21

            """)
        XCTAssertEqual(UnifiedDiff.render(old, old, oldName: "old", newName: "new"), "")
        XCTAssertEqual(UnifiedDiff.render([], ["only"], oldName: "old", newName: "new"), "--- old\n+++ new\n@@ -0,0 +1,1 @@\n+only\n")
    }

    func testSecretsAreMaskedTheSameWayInBothConfigs() {
        var mask = SecretMask()
        let config = """
            userlist admins
                user ops insecure-password hunter2
                user audit password $6$salt$hash groups g1
            listen stats
                stats auth admin:s3cret:with:colons
                #    stats auth admin:commented-out
            -----BEGIN PRIVATE KEY-----
            MIIEvQIBADANBgkqhkiG9w0BAQEFAASC
            -----END PRIVATE KEY-----
            """
        XCTAssertEqual(mask.mask(config), [
            "userlist admins",
            "    user ops insecure-password <secret 1>",
            "    user audit password <secret 2> groups g1",
            "listen stats",
            "    stats auth admin:<secret 3>",
            "    #    stats auth admin:<secret 4>",
            "-----BEGIN PRIVATE KEY-----",
            "<secret 5>",
            "-----END PRIVATE KEY-----",
        ])
        XCTAssertEqual(mask.mask("    stats auth other:hunter2"), ["    stats auth other:<secret 1>"])
    }
}
