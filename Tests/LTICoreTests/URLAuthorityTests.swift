import Foundation
import LTICore
import LTITestSupport
import Testing

@Suite("URL authorities")
struct URLAuthorityTests {
    static let schemes = ["https://", "http://", "HTTPS://", "hTtP://", "https:/", "https:", "ftp://", "https//", "httpss://", ""]
    static let hosts = [
        "lab.example", "LAB.Example.COM", "a", "1.2.3.4", "-lab.example", "lab-.example", "xn--bcher-kva.example", "lab_1.example",
        "", "[::1]", "[::1", "user@lab.example", "user:pw@lab.example", "@lab.example", "lab%2Eexample", "lab.example.", ".lab",
        "lab..example", "läb.example", "lab example", "lab\\.example", "127.0.0.1", "localhost", "a.b-c.d",
    ]
    static let ports = ["", "", ":", ":0", ":080", ":443", ":65535", ":65536", ":99999", ":123456", ":8a", ":-1", "::80"]
    static let pieces = [
        "/", "/a", "/lab/42", "?", "?a=b&c=d", "#", "#frag", "##", "%41", "%4", "%zz", "%", " ", "<", ">", "\"", "[", "]", "{",
        "}", "|", "\\", "^", "`", "é", "~", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=", ":", "@", "/..", "//",
        "\u{0}", "\t", "\n",
    ]

    func randomURL(_ generator: inout SeededGenerator) -> String {
        var url = Self.schemes.randomElement(using: &generator)! + Self.hosts.randomElement(using: &generator)!
        url += Self.ports.randomElement(using: &generator)!
        for _ in 0..<Int.random(in: 0...6, using: &generator) { url += Self.pieces.randomElement(using: &generator)! }
        return url
    }

    @Test("a URL read directly has the authority Foundation's parser gives it: 200,000 generated URLs, tricky parts included")
    func plainMatchesFoundation() async {
        var generator = SeededGenerator(seed: 0x5EED)
        var read = 0
        var disagreements: [String] = []
        for index in 0..<200_000 {
            // Tests share a handful of threads: this long loop lets the others run now and then.
            if index % 2_000 == 0 { await Task.yield() }
            let url = randomURL(&generator)
            guard let plain = PlainURL.authority(url) else { continue }
            read += 1
            if plain != foundationURLAuthority(url), disagreements.count < 5 { disagreements.append(url) }
        }
        #expect(disagreements.isEmpty, "read directly, but Foundation says otherwise: \(disagreements.map { $0.debugDescription })")
        #expect(read > 3_000, "the generator should produce plain URLs too (\(read))")
    }

    @Test("plain URLs are read directly; anything unusual is left to the reference parser")
    func plainSubset() {
        #expect(PlainURL.authority("https://Lab.Example.com/lab?id=1#x") == "lab.example.com")
        #expect(PlainURL.authority("http://127.0.0.1:080/") == "127.0.0.1:80")
        #expect(PlainURL.authority("https://lab.example:") == "lab.example")
        for unusual in [
            "https://user@lab.example/", "https://[::1]:8443/", "https://lab.example/a b", "https://lab.example/%zz",
            "https://lab.example/#a#b", "https://lab\\.example/", "https://lab.example:123456/", "javascript://lab.example/",
        ] {
            #expect(PlainURL.authority(unusual) == nil, "\(unusual) is not plain")
        }
        // The public function answers for every URL as the reference does.
        #expect(URLAuthority("https://user@lab.example/") == nil)
        #expect(URLAuthority("https://[::1]:8443/") == foundationURLAuthority("https://[::1]:8443/"))
        #expect(URLAuthority("https://lab.example/a b") == foundationURLAuthority("https://lab.example/a b"))
        #expect(URLAuthority("https://xn--bcher-kva.example/") == "bücher.example")
    }
}
