#include "tools/workflows/sql_script.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace cambium::workflows {
namespace {

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsIdentChar(char c) {
  return IsIdentStart(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$';
}

// 1-based line and column (in characters: UTF-8 continuation bytes do not count).
std::pair<int, int> LineColumn(std::string_view s, size_t offset) {
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset && i < s.size(); ++i) {
    if (s[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  int column = 1;
  for (size_t i = line_start; i < offset && i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++column;
  }
  return {line, column};
}

// The lexer of SplitSql: a cursor over the script plus the statement being built.
class Splitter {
 public:
  explicit Splitter(std::string_view s) : s_(s) {}

  absl::StatusOr<std::vector<SqlStatement>> Run() {
    while (i_ < s_.size()) {
      absl::Status status = Step();
      if (!status.ok()) return status;
    }
    Emit(s_.size());
    return std::move(out_);
  }

 private:
  absl::Status Unterminated(const char* what, size_t start) const {
    return absl::InvalidArgumentError(
        absl::StrCat("unterminated ", what, " starting at line ", LineColumn(s_, start).first));
  }

  char At(size_t i) const { return i < s_.size() ? s_[i] : '\0'; }

  absl::Status Step() {
    const char c = s_[i_];
    if (c == '-' && At(i_ + 1) == '-') {
      size_t end = s_.find('\n', i_);
      i_ = end == std::string_view::npos ? s_.size() : end + 1;
      return absl::OkStatus();
    }
    if (c == '/' && At(i_ + 1) == '*') return SkipBlockComment();
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      ++i_;
      return absl::OkStatus();
    }
    if (c == ';' && paren_depth_ == 0 && begin_depth_ == 0) {
      Emit(i_);
      ++i_;
      return absl::OkStatus();
    }
    if (!start_) start_ = i_;
    if (c == '\'') return SkipQuoted('\'', /*backslash=*/false, "quoted string");
    if (c == '"') return SkipQuoted('"', /*backslash=*/false, "quoted identifier");
    if (c == '$') return DollarOrOther();
    if (IsIdentStart(c)) return Word();
    if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == '_')) {
        ++i_;
      }
      return absl::OkStatus();
    }
    if (c == '(') ++paren_depth_;
    if (c == ')' && paren_depth_ > 0) --paren_depth_;
    ++i_;
    return absl::OkStatus();
  }

  absl::Status SkipBlockComment() {
    const size_t start = i_;
    int depth = 0;
    while (i_ < s_.size()) {
      if (s_[i_] == '/' && At(i_ + 1) == '*') {
        ++depth;
        i_ += 2;
      } else if (s_[i_] == '*' && At(i_ + 1) == '/') {
        i_ += 2;
        if (--depth == 0) return absl::OkStatus();
      } else {
        ++i_;
      }
    }
    return Unterminated("block comment", start);
  }

  // At the opening quote; leaves i_ after the closing one. A doubled quote is an
  // escaped quote; with `backslash`, so is \' (and \\).
  absl::Status SkipQuoted(char quote, bool backslash, const char* what) {
    const size_t start = i_;
    for (++i_; i_ < s_.size(); ++i_) {
      if (backslash && s_[i_] == '\\') {
        ++i_;
      } else if (s_[i_] == quote) {
        if (At(i_ + 1) != quote) {
          ++i_;
          return absl::OkStatus();
        }
        ++i_;
      }
    }
    return Unterminated(what, start);
  }

  // $tag$...$tag$ or $$...$$; otherwise a parameter ($1) or an operator character.
  absl::Status DollarOrOther() {
    size_t j = i_ + 1;
    if (IsIdentStart(At(j))) {
      while (j < s_.size() && IsIdentChar(s_[j]) && s_[j] != '$') ++j;
    }
    if (At(j) != '$') {
      ++i_;
      return absl::OkStatus();
    }
    std::string_view tag = s_.substr(i_, j + 1 - i_);
    size_t close = s_.find(tag, j + 1);
    if (close == std::string_view::npos) return Unterminated("dollar-quoted string", i_);
    i_ = close + tag.size();
    return absl::OkStatus();
  }

  // An unquoted word: E'...' strings, and psql's BEGIN ... END tracking inside
  // CREATE [OR REPLACE] FUNCTION|PROCEDURE.
  absl::Status Word() {
    const size_t start = i_;
    while (i_ < s_.size() && IsIdentChar(s_[i_])) ++i_;
    std::string word = absl::AsciiStrToLower(std::string(s_.substr(start, i_ - start)));
    if (word == "e" && At(i_) == '\'') return SkipQuoted('\'', /*backslash=*/true, "quoted string");
    if (identifier_count_ == 0) std::fill(std::begin(ids_), std::end(ids_), '\0');
    if (word == "create" || word == "function" || word == "procedure" || word == "or" ||
        word == "replace") {
      if (identifier_count_ < 4) ids_[identifier_count_] = word[0];
    }
    ++identifier_count_;
    const bool in_routine =
        ids_[0] == 'c' &&
        (ids_[1] == 'f' || ids_[1] == 'p' ||
         (ids_[1] == 'o' && ids_[2] == 'r' && (ids_[3] == 'f' || ids_[3] == 'p')));
    if (in_routine && paren_depth_ == 0) {
      if (word == "begin" || (word == "case" && begin_depth_ > 0)) ++begin_depth_;
      if (word == "end" && begin_depth_ > 0) --begin_depth_;
    }
    return absl::OkStatus();
  }

  void Emit(size_t end) {
    if (start_) {
      std::string_view text = s_.substr(*start_, end - *start_);
      while (!text.empty() && absl::ascii_isspace(static_cast<unsigned char>(text.back()))) {
        text.remove_suffix(1);
      }
      auto [line, column] = LineColumn(s_, *start_);
      out_.push_back(SqlStatement{std::string(text), line, column, *start_});
    }
    start_.reset();
    paren_depth_ = 0;
    begin_depth_ = 0;
    identifier_count_ = 0;
  }

  std::string_view s_;
  size_t i_ = 0;
  std::optional<size_t> start_;  // first significant byte of the current statement
  int paren_depth_ = 0;
  int begin_depth_ = 0;
  int identifier_count_ = 0;
  char ids_[4] = {};  // first letters of the leading CREATE/OR/REPLACE/FUNCTION words
  std::vector<SqlStatement> out_;
};

// The first `max` tokens of a statement, upper-cased; a parenthesized group is one
// token "(" and a quoted string or identifier is "'" or "\"". Comments are skipped.
std::vector<std::string> LeadingWords(std::string_view s, size_t max = 8) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size() && words.size() < max) {
    const char c = s[i];
    if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      size_t end = s.find('\n', i);
      i = end == std::string_view::npos ? s.size() : end;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      size_t end = s.find("*/", i + 2);  // nesting is irrelevant this early
      i = end == std::string_view::npos ? s.size() : end + 2;
    } else if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (IsIdentStart(c)) {
      size_t start = i;
      while (i < s.size() && IsIdentChar(s[i])) ++i;
      words.push_back(absl::AsciiStrToUpper(std::string(s.substr(start, i - start))));
    } else if (c == '(') {
      int depth = 0;
      for (; i < s.size(); ++i) {
        if (s[i] == '(') ++depth;
        if (s[i] == ')' && --depth == 0) break;
      }
      ++i;
      words.push_back("(");
    } else {
      words.push_back(std::string(1, c));
      ++i;
    }
  }
  return words;
}

bool Has(const std::vector<std::string>& w, size_t i, std::string_view word) {
  return i < w.size() && w[i] == word;
}

bool NeedsOwnTransactionWords(const std::vector<std::string>& w) {
  if (w.empty()) return false;
  const std::string& verb = w[0];
  if (verb == "VACUUM") return true;
  if (verb == "CREATE" || verb == "DROP") {
    const size_t k = verb == "CREATE" && Has(w, 1, "UNIQUE") ? 2 : 1;
    if (Has(w, k, "INDEX") && Has(w, k + 1, "CONCURRENTLY")) return true;
    return Has(w, 1, "DATABASE") || Has(w, 1, "TABLESPACE") || Has(w, 1, "SUBSCRIPTION");
  }
  if (verb == "REINDEX") {
    const size_t k = Has(w, 1, "(") ? 2 : 1;
    if (std::find(w.begin(), w.end(), "CONCURRENTLY") != w.end()) return true;
    return Has(w, k, "SCHEMA") || Has(w, k, "DATABASE") || Has(w, k, "SYSTEM");
  }
  if (verb == "ALTER") {
    if (Has(w, 1, "SYSTEM")) return true;
    if (Has(w, 1, "DATABASE")) return Has(w, 3, "SET") && Has(w, 4, "TABLESPACE");
    return Has(w, 1, "SUBSCRIPTION") && Has(w, 3, "REFRESH");
  }
  if (verb == "CLUSTER") {
    return w.size() == 1 || (w.size() == 2 && (w[1] == "VERBOSE" || w[1] == "("));
  }
  if (verb == "DISCARD") return Has(w, 1, "ALL");
  return (verb == "COMMIT" || verb == "ROLLBACK") && Has(w, 1, "PREPARED");
}

// The transaction-control verb a statement starts with, if any.
std::optional<std::string> TransactionControl(const std::vector<std::string>& w) {
  if (w.empty()) return std::nullopt;
  const std::string& verb = w[0];
  if (verb == "BEGIN" || verb == "END" || verb == "ABORT" || verb == "SAVEPOINT" ||
      verb == "RELEASE") {
    return verb;
  }
  if ((verb == "COMMIT" || verb == "ROLLBACK") && !Has(w, 1, "PREPARED")) return verb;
  if ((verb == "START" || verb == "PREPARE") && Has(w, 1, "TRANSACTION")) {
    return verb + " TRANSACTION";
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::vector<SqlStatement>> SplitSql(std::string_view script) {
  return Splitter(script).Run();
}

bool NeedsOwnTransaction(const SqlStatement& statement) {
  return NeedsOwnTransactionWords(LeadingWords(statement.text));
}

absl::Status CheckMigrationStatements(const std::vector<SqlStatement>& statements) {
  for (const SqlStatement& statement : statements) {
    if (auto verb = TransactionControl(LeadingWords(statement.text, 2))) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", statement.line, ": ", *verb,
                       " is not allowed in a migration file; the migration runner decides "
                       "where transactions begin and end"));
    }
  }
  return absl::OkStatus();
}

}  // namespace cambium::workflows
