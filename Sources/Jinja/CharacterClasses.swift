// Character classes as Python's str predicates define them (isspace, isalpha, isdigit …).

@inline(__always) func isPySpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
    default: return false
    }
}

@inline(__always) func isPyLineBreak(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x0A...0x0D, 0x1C...0x1E, 0x85, 0x2028, 0x2029: return true
    default: return false
    }
}

func isPyAlpha(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return (c.value | 0x20) >= 0x61 && (c.value | 0x20) <= 0x7A }
    switch c.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return false
    }
}

func isPyDecimal(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
    return c.properties.numericType == .decimal
}

func isPyDigit(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
    let type = c.properties.numericType
    return type == .decimal || type == .digit
}

func isPyNumeric(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
    return c.properties.numericType != nil
}

@inline(__always) func isPyAlnum(_ c: Unicode.Scalar) -> Bool { isPyAlpha(c) || isPyNumeric(c) }

/// `\w` of Python's `re` on str patterns.
@inline(__always) func isPyWord(_ c: Unicode.Scalar) -> Bool { c == "_" || isPyAlnum(c) }

func isPyLower(_ c: Unicode.Scalar) -> Bool { c.isASCII ? (c.value >= 0x61 && c.value <= 0x7A) : c.properties.isLowercase }
func isPyUpper(_ c: Unicode.Scalar) -> Bool { c.isASCII ? (c.value >= 0x41 && c.value <= 0x5A) : c.properties.isUppercase }
func isPyTitle(_ c: Unicode.Scalar) -> Bool { !c.isASCII && c.properties.generalCategory == .titlecaseLetter }
func isPyCased(_ c: Unicode.Scalar) -> Bool { c.isASCII ? isPyAlpha(c) : c.properties.isCased }

func isPyPrintable(_ c: Unicode.Scalar) -> Bool {
    if c == " " { return true }
    switch c.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator: return false
    default: return true
    }
}
