%% emqx-double (a test double of EMQX 4.4.4, not EMQX): a small JSON encoder
%% and decoder (OTP 25 has none), enough for the management API and for
%% `emqx_ctl data export|import`.
%%
%% encode/1 takes maps (keys sorted), {obj, [{Key, Value}]} (keys in the
%% given order, as jiffy writes a proplist), lists, binaries, numbers and
%% atoms (true, false, null as themselves, any other atom as a string, as
%% jiffy does). decode/1 gives maps for objects, lists for arrays, binaries
%% for strings, integers or floats, and true | false | null; it returns
%% {ok, Term} or {error, Reason}.
-module(emqx_double_json).

-export([encode/1, decode/1]).

%% ---------------------------------------------------------------------------
%% encode

encode(M) when is_map(M) ->
    encode({obj, lists:sort(maps:to_list(M))});
encode({obj, Pairs}) ->
    ["{", lists:join(",", [[key(K), ":", encode(V)] || {K, V} <- Pairs]), "}"];
encode(L) when is_list(L) -> ["[", lists:join(",", [encode(E) || E <- L]), "]"];
encode(true) -> "true";
encode(false) -> "false";
encode(null) -> "null";
encode(A) when is_atom(A) -> encode(atom_to_binary(A));
encode(I) when is_integer(I) -> integer_to_list(I);
encode(F) when is_float(F) -> float_to_list(F, [{decimals, 6}, compact]);
encode(B) when is_binary(B) -> [$", escape(B), $"].

key(K) when is_atom(K) -> encode(atom_to_binary(K));
key(K) when is_list(K) -> encode(list_to_binary(K));
key(K) -> encode(K).

escape(B) ->
    [case C of
         $" -> "\\\"";
         $\\ -> "\\\\";
         $\n -> "\\n";
         $\r -> "\\r";
         $\t -> "\\t";
         _ when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
         _ -> C
     end || <<C>> <= B].

%% ---------------------------------------------------------------------------
%% decode

decode(Bin) when is_list(Bin) -> decode(iolist_to_binary(Bin));
decode(Bin) when is_binary(Bin) ->
    try value(ws(Bin)) of
        {V, Rest} ->
            case ws(Rest) of
                <<>> -> {ok, V};
                _ -> {error, trailing_data}
            end
    catch throw:Why -> {error, Why}
    end.

ws(<<C, R/binary>>) when C =:= $\s; C =:= $\t; C =:= $\n; C =:= $\r -> ws(R);
ws(B) -> B.

value(<<"{", R/binary>>) -> object(ws(R), #{});
value(<<"[", R/binary>>) -> array(ws(R), []);
value(<<"\"", R/binary>>) -> string(R, []);
value(<<"true", R/binary>>) -> {true, R};
value(<<"false", R/binary>>) -> {false, R};
value(<<"null", R/binary>>) -> {null, R};
value(<<C, _/binary>> = B) when C =:= $-; C >= $0, C =< $9 -> number(B);
value(_) -> throw(invalid_json).

object(<<"}", R/binary>>, M) when map_size(M) =:= 0 -> {M, R};
object(<<"\"", R/binary>>, M) ->
    {K, R1} = string(R, []),
    case ws(R1) of
        <<":", R2/binary>> ->
            {V, R3} = value(ws(R2)),
            M1 = M#{K => V},
            case ws(R3) of
                <<",", R4/binary>> -> object(ws(R4), M1);
                <<"}", R4/binary>> -> {M1, R4};
                _ -> throw(invalid_json)
            end;
        _ -> throw(invalid_json)
    end;
object(_, _) -> throw(invalid_json).

array(<<"]", R/binary>>, []) -> {[], R};
array(B, Acc) ->
    {V, R} = value(B),
    case ws(R) of
        <<",", R1/binary>> -> array(ws(R1), [V | Acc]);
        <<"]", R1/binary>> -> {lists:reverse([V | Acc]), R1};
        _ -> throw(invalid_json)
    end.

string(<<"\"", R/binary>>, Acc) -> {unicode:characters_to_binary(lists:reverse(Acc)), R};
string(<<"\\", E, R/binary>>, Acc) ->
    case E of
        $" -> string(R, [$" | Acc]);
        $\\ -> string(R, [$\\ | Acc]);
        $/ -> string(R, [$/ | Acc]);
        $b -> string(R, [$\b | Acc]);
        $f -> string(R, [$\f | Acc]);
        $n -> string(R, [$\n | Acc]);
        $r -> string(R, [$\r | Acc]);
        $t -> string(R, [$\t | Acc]);
        $u ->
            {Hi, R1} = hex4(R),
            case {Hi >= 16#D800 andalso Hi =< 16#DBFF, R1} of
                {true, <<"\\u", R2/binary>>} ->
                    {Lo, R3} = hex4(R2),
                    Lo >= 16#DC00 andalso Lo =< 16#DFFF orelse throw(invalid_json),
                    string(R3, [16#10000 + ((Hi - 16#D800) bsl 10) + (Lo - 16#DC00) | Acc]);
                {true, _} -> throw(invalid_json);
                {false, _} when Hi >= 16#DC00, Hi =< 16#DFFF -> throw(invalid_json);
                {false, _} -> string(R1, [Hi | Acc])
            end;
        _ -> throw(invalid_json)
    end;
string(<<C, _/binary>>, _) when C < 32 -> throw(invalid_json);
string(<<C/utf8, R/binary>>, Acc) -> string(R, [C | Acc]);
string(_, _) -> throw(invalid_json).

hex4(<<H:4/binary, R/binary>>) ->
    try {binary_to_integer(H, 16), R}
    catch error:badarg -> throw(invalid_json)
    end;
hex4(_) -> throw(invalid_json).

number(B) ->
    {Int, R1} = take(B, fun(C) -> C =:= $- orelse (C >= $0 andalso C =< $9) end),
    {Frac, R2} = case R1 of
                     <<".", AfterDot/binary>> -> take_digits(AfterDot, ".");
                     _ -> {"", R1}
                 end,
    {Exp, R3} = case R2 of
                    <<E, AfterE/binary>> when E =:= $e; E =:= $E ->
                        {Sign, R4} = case AfterE of
                                         <<S, R5/binary>> when S =:= $+; S =:= $- -> {[S], R5};
                                         _ -> {"", AfterE}
                                     end,
                        {Ds, R6} = take_digits(R4, ""),
                        {"e" ++ Sign ++ Ds, R6};
                    _ -> {"", R2}
                end,
    valid_int(Int) orelse throw(invalid_json),
    case {Frac, Exp} of
        {"", ""} -> {list_to_integer(Int), R3};
        _ ->
            F = case Frac of "" -> ".0"; _ -> Frac end,
            try {list_to_float(Int ++ F ++ Exp), R3}
            catch error:badarg -> throw(invalid_json)
            end
    end.

%% "-0", "0", "12": no leading zeros, at least one digit.
valid_int("-" ++ D) -> valid_digits(D);
valid_int(D) -> valid_digits(D).
valid_digits([]) -> false;
valid_digits("0") -> true;
valid_digits([$0 | _]) -> false;
valid_digits(D) -> lists:all(fun(C) -> C >= $0 andalso C =< $9 end, D).

take_digits(B, Prefix) ->
    case take(B, fun(C) -> C >= $0 andalso C =< $9 end) of
        {"", _} -> throw(invalid_json);
        {Ds, R} -> {Prefix ++ Ds, R}
    end.

take(B, Pred) -> take(B, Pred, []).
take(<<C, R/binary>> = B, Pred, Acc) ->
    case Pred(C) of
        true -> take(R, Pred, [C | Acc]);
        false -> {lists:reverse(Acc), B}
    end;
take(<<>>, _, Acc) -> {lists:reverse(Acc), <<>>}.
