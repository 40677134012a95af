import LTICore
import Testing

@Suite("Form encoding")
struct FormEncodingTests {
    @Test("unreserved bytes stay, every other byte becomes %XX (UTF-8, upper case)")
    func percentEncoding() {
        #expect(FormEncoding.percentEncode("AZaz09-._~") == "AZaz09-._~")
        #expect(FormEncoding.percentEncode("a b/ü+&=%") == "a%20b%2F%C3%BC%2B%26%3D%25")
        #expect(FormEncoding.percentEncode("") == "")
        #expect(
            FormEncoding.encode([("redirect_uri", "https://t/lti/launch?x=1"), ("state", "s")])
                == "redirect_uri=https%3A%2F%2Ft%2Flti%2Flaunch%3Fx%3D1&state=s")
    }
}
