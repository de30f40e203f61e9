%% emqx-double (a test double of EMQX 4.4.4, not EMQX): the management
%% applications of emqx_management (AppId / AppSecret pairs of the HTTP API)
%% and `emqx_ctl data export|import`.
%%
%% As 4.4.4's emqx_mgmt_auth keeps them: the mnesia table mqtt_app, record
%% {mqtt_app, Id, Secret, Name, Desc, Status, Expired}, disc_copies on every
%% node of the cluster (created on a lone node, copied to a node that joins,
%% whose own apps are then replaced by the cluster's). At emqx_management
%% start the default application (management.default_application.id /
%% .secret) is added only when both are set and the id does not exist yet.
-module(emqx_double_mgmt).

-export([init_table/0, wait_for_table/0, copy_table/0, add_default_app/0,
         is_authorized/2, mgmt/1, data/1, base62/1]).

-define(TAB, mqtt_app).
-define(FIELDS, [id, secret, name, desc, status, expired]).
-define(SANE_ID_RE, "^[A-Za-z0-9]+[A-Za-z0-9-_]*$").
%% ?VERSIONS of emqx_mgmt.hrl 4.4.4: the export versions `data import` takes.
-define(VERSIONS, ["4.0", "4.1", "4.2", "4.3", "4.4"]).

%% ---------------------------------------------------------------------------
%% The table

%% On a node whose schema has no mqtt_app (a first boot, or a fresh schema
%% after `cluster leave`): create it, disc_copies here only.
init_table() ->
    case lists:member(?TAB, mnesia:system_info(tables)) of
        true -> ok;
        false ->
            case mnesia:create_table(?TAB, [{disc_copies, [node()]},
                                            {record_name, ?TAB},
                                            {attributes, ?FIELDS}]) of
                {atomic, ok} -> ok;
                {aborted, {already_exists, ?TAB}} -> ok
            end
    end.

%% As ekka_mnesia's wait_for(tables): a disc copy that must come from a peer
%% (this node was not the last of its cluster to stop) waits for that peer;
%% the node does not finish starting meanwhile.
wait_for_table() ->
    case mnesia:wait_for_tables([?TAB], 30000) of
        ok -> ok;
        {timeout, Tabs} ->
            emqx_double:say("[warning] ekka_mnesia: still waiting for table(s): ~p", [Tabs]),
            mnesia_controller:connect_nodes(mnesia:system_info(db_nodes)),
            wait_for_table();
        {error, Reason} -> {error, Reason}
    end.

%% After a join (ekka_mnesia:copy_table(mqtt_app, disc_copies)): a disc copy
%% of the cluster's table on this node.
copy_table() ->
    case mnesia:add_table_copy(?TAB, node(), disc_copies) of
        {atomic, ok} -> ok;
        {aborted, {already_exists, ?TAB, _}} -> ok;
        {aborted, {no_exists, _}} -> init_table();
        {aborted, Reason} -> {error, Reason}
    end.

%% emqx_mgmt_auth:add_default_app/0: silently nothing when the id exists.
add_default_app() ->
    Get = fun(K) -> emqx_double:plugin_conf(emqx_management, K) end,
    case {Get("management.default_application.id"),
          Get("management.default_application.secret")} of
        {undefined, _} -> ok;
        {_, undefined} -> ok;
        {Id, Secret} ->
            _ = add_app(list_to_binary(Id), <<"Default">>, list_to_binary(Secret),
                        <<"Application user">>, true, undefined),
            ok
    end.

add_app(Id, Name, Secret, Desc, Status, Expired) ->
    case sane_id(Id) of
        ok ->
            Secret1 = case Secret of
                          <<_, _/binary>> -> Secret;
                          _ -> new_secret()
                      end,
            App = {?TAB, Id, Secret1, Name, Desc, Status, Expired},
            Add = fun() ->
                          case mnesia:wread({?TAB, Id}) of
                              [] -> mnesia:write(App);
                              _ -> mnesia:abort(already_existed)
                          end
                  end,
            case mnesia:transaction(Add) of
                {atomic, ok} -> {ok, Secret1};
                {aborted, Reason} -> {error, Reason}
            end;
        Error -> Error
    end.

force_add_app(Id, Name, Secret, Desc, Status, Expired) ->
    case sane_id(Id) of
        ok ->
            case mnesia:transaction(fun() ->
                                            mnesia:write({?TAB, Id, Secret, Name, Desc,
                                                          Status, Expired})
                                    end) of
                {atomic, ok} -> ok;
                {aborted, Reason} -> {error, Reason}
            end;
        Error -> Error
    end.

%% management.application.default_secret when set, else 32 random bytes in
%% the base62 alphabet of emqx_base62.
new_secret() ->
    case emqx_double:plugin_conf(emqx_management, "management.application.default_secret") of
        undefined -> base62(crypto:strong_rand_bytes(32));
        S -> list_to_binary(S)
    end.

%% 6 bits at a time (the last group shorter): 0-25 A-Z, 26-51 a-z,
%% 52-60 0-8, 61-63 "9A" "9B" "9C".
base62(Bin) -> iolist_to_binary(b62(Bin)).
b62(<<I:6, R/bitstring>>) -> [b62c(I) | b62(R)];
b62(<<>>) -> [];
b62(R) -> N = bit_size(R), <<I:N>> = R, [b62c(I)].
b62c(I) when I < 26 -> $A + I;
b62c(I) when I < 52 -> $a + I - 26;
b62c(I) when I < 61 -> $0 + I - 52;
b62c(I) -> [$9, $A + I - 61].

%% emqx_misc:is_sane_id/1 of 4.4.4.
sane_id(Id) when is_binary(Id) ->
    case byte_size(Id) > 0 andalso byte_size(Id) =< 256 of
        true ->
            case re:run(Id, ?SANE_ID_RE) of
                nomatch -> {error, <<"required: ", ?SANE_ID_RE>>};
                _ -> ok
            end;
        false -> {error, <<"0 < Length =< 256">>}
    end.

lookup(Id) ->
    case mnesia:dirty_read(?TAB, Id) of
        [{?TAB, Id, Secret, Name, Desc, Status, Expired}] ->
            {Id, Secret, Name, Desc, Status, Expired};
        [] -> undefined
    end.

list_apps() ->
    [{Id, S, N, D, St, E} || {?TAB, Id, S, N, D, St, E} <- ets:tab2list(?TAB)].

%% emqx_mgmt_auth:is_authorized/2: status exactly true, not expired (expired
%% undefined or at/after now, in seconds) and the same secret; anything odd
%% (a status that is not a boolean) is a refusal, as its caller catches.
is_authorized(Id, Secret) ->
    try
        case lookup(Id) of
            {_, Secret1, _, _, Status, Expired} ->
                Status andalso not_expired(Expired) andalso Secret =:= Secret1;
            undefined -> false
        end
    catch _:_ -> false
    end.

not_expired(undefined) -> true;
not_expired(Expired) -> Expired >= erlang:system_time(second).

%% ---------------------------------------------------------------------------
%% emqx_ctl mgmt ... (texts of emqx_mgmt_cli 4.4.4)

f(Fmt, Args) -> io_lib:format(Fmt, Args).

mgmt(["insert", AppId, Name]) ->
    case add_app(list_to_binary(AppId), list_to_binary(Name), undefined,
                 <<"Application user">>, true, undefined) of
        {ok, Secret} -> f("AppSecret: ~s~n", [Secret]);
        {error, already_existed} -> f("Error: already existed~n", []);
        {error, Reason} -> f("Error: ~p~n", [Reason])
    end;
mgmt(["lookup", AppId]) ->
    case lookup(list_to_binary(AppId)) of
        undefined -> f("Not Found.~n", []);
        App -> app_line(App)
    end;
mgmt(["update", AppId, Status]) ->
    Id = list_to_binary(AppId),
    case mnesia:dirty_read(?TAB, Id) of
        [App] ->
            case mnesia:transaction(fun() -> mnesia:write(setelement(6, App, list_to_atom(Status))) end) of
                {atomic, ok} -> f("update successfully.~n", []);
                {aborted, Reason} -> f("Error: ~p~n", [Reason])
            end;
        [] -> f("Error: ~p~n", [not_found])
    end;
mgmt(["delete", AppId]) ->
    %% mnesia:delete/1 is ok for a missing key too: always `ok`.
    case mnesia:transaction(fun() -> mnesia:delete({?TAB, list_to_binary(AppId)}) end) of
        {atomic, ok} -> f("ok~n", []);
        {aborted, Reason} -> f("Error: ~p~n", [Reason])
    end;
mgmt(["list"]) ->
    [app_line(App) || App <- list_apps()];
mgmt(_) ->
    emqx_double_ctl:usage([{"mgmt list", "List Applications"},
                           {"mgmt insert <AppId> <Name>", "Add Application of REST API"},
                           {"mgmt update <AppId> <status>", "Update Application of REST API"},
                           {"mgmt lookup <AppId>", "Get Application of REST API"},
                           {"mgmt delete <AppId>", "Delete Application of REST API"}]).

app_line({Id, Secret, Name, Desc, Status, Expired}) ->
    f("app_id: ~s, secret: ~s, name: ~s, desc: ~s, status: ~s, expired: ~p~n",
      [Id, Secret, Name, Desc, Status, Expired]).

%% ---------------------------------------------------------------------------
%% emqx_ctl data export | import <File> [--env '<json>']
%% -> Text, or {crash, Reason}: 4.4.4's command crashed (nothing printed,
%% `CMD Error` logged, exit code 1).

data(["export"]) ->
    case export() of
        {ok, Path} -> f("The emqx data has been successfully exported to ~s.~n", [Path]);
        {error, Reason} -> f("The emqx data export failed due to ~p.~n", [Reason])
    end;
data(["import", File]) ->
    data(["import", File, "--env", "{}"]);
data(["import", File, "--env", Env]) ->
    case import(File, Env) of
        ok -> f("The emqx data has been imported successfully.~n", []);
        {error, import_failed} -> f("The emqx data import failed.~n", []);
        {error, Reason} ->
            f("The emqx data import failed: ~0p while reading ~s.~n", [Reason, File]);
        {crash, _} = Crash -> Crash
    end;
data(_) ->
    emqx_double_ctl:usage([{"data import <File> [--env '<json>']",
                            "Import data from the specified file, possibly with overrides"},
                           {"data export", "Export data"}]).

%% <node.data_dir>/backup, as written in the conf (relative to /opt/emqx).
backup_dir() -> filename:join(emqx_double:conf("node.data_dir", "data"), "backup").
data_dir() -> emqx_double:conf("node.data_dir", "data").
abs_path(Path) -> filename:absname(Path, emqx_double:root()).

export() ->
    Secs = erlang:system_time(second),
    {{Y, M, D}, {H, Mi, S}} =
        calendar:universal_time_to_local_time(
          calendar:system_time_to_universal_time(Secs, second)),
    Base = f("emqx-export-~p-~p-~p-~p-~p-~p.json", [Y, M, D, H, Mi, S]),
    Path = filename:join(backup_dir(), Base),
    Date = list_to_binary(f("~4..0w-~2..0w-~2..0w ~2..0w:~2..0w:~2..0w", [Y, M, D, H, Mi, S])),
    %% 4.4.4's order; the double has no rule engine, blacklist, dashboard
    %% users or auth/acl mnesia tables: those lists are empty.
    Apps = [{obj, [{id, Id}, {secret, Sec}, {name, N}, {desc, De}, {status, St}, {expired, E}]}
            || {Id, Sec, N, De, St, E} <- list_apps()],
    Doc = {obj, [{version, list_to_binary(string:sub_string(emqx_double:version(), 1, 3))},
                 {rules, []}, {resources, []}, {blacklist, []},
                 {apps, Apps},
                 {users, []}, {auth_mnesia, []}, {acl_mnesia, []},
                 {date, Date}]},
    ok = filelib:ensure_dir(filename:join(abs_path(backup_dir()), "dummy")),
    case file:write_file(abs_path(Path), emqx_double_json:encode(Doc)) of
        ok -> {ok, Path};
        Error -> Error
    end.

import(File, EnvJson) ->
    case check_import_json(File) of
        {ok, Imported} ->
            try
                {ok, Overrides} = emqx_double_json:decode(EnvJson),
                Data = maps:merge(Imported, Overrides),
                Version = to_version(maps:get(<<"version">>, Data)),
                check_auth_type(Data, Version),
                case version_supported(Data, Version) of
                    true ->
                        try do_import(Data)
                        catch C:R ->
                                emqx_double:say("[error] The emqx data import failed: ~0p", [{C, R}]),
                                {error, import_failed}
                        end;
                    false ->
                        %% CE 4.4.4 returns a 3-tuple the CLI does not match.
                        emqx_double:say("[error] Unsupported version: ~p", [Version]),
                        {crash, {case_clause, {error, unsupported_version, Version}}}
                end
            catch C2:R2 -> {crash, {C2, R2}}
            end;
        {error, Reason} -> {error, Reason}
    end.

%% By basename among the .json files of data/backup, then of data; else the
%% path as given (relative to /opt/emqx); then read; then parse.
check_import_json(File) ->
    Candidates = [filename:join(Dir, F) || Dir <- [backup_dir(), data_dir()],
                                           F <- json_files(abs_path(Dir)),
                                           F =:= File],
    Found = case Candidates of
                [First | _] -> {ok, abs_path(First)};
                [] -> case filelib:is_file(abs_path(File)) of
                          true -> {ok, abs_path(File)};
                          false -> {error, not_found}
                      end
            end,
    case Found of
        {ok, Path} ->
            case file:read_file(Path) of
                {ok, Bin} ->
                    case emqx_double_json:decode(Bin) of
                        {ok, Json} -> {ok, Json};
                        {error, _} -> {error, bad_json}
                    end;
                Error -> Error
            end;
        Error -> Error
    end.

json_files(Dir) ->
    _ = filelib:ensure_dir(filename:join(Dir, "dummy")),
    case file:list_dir_all(Dir) of
        {ok, Fs} -> [F || F <- Fs, filename:extension(F) =:= ".json"];
        _ -> []
    end.

to_version(V) when is_integer(V) -> integer_to_list(V);
to_version(V) when is_binary(V) -> binary_to_list(V);
to_version(V) when is_list(V) -> V.

%% Data from before 4.3 with auth/acl mnesia rows needs "auth.mnesia.as".
check_auth_type(Data, Version) ->
    case {maps:get(<<"auth_mnesia">>, Data, []), maps:get(<<"acl_mnesia">>, Data, [])} of
        {[], []} -> ok;
        _ ->
            case maps:is_key(<<"auth.mnesia.as">>, Data) orelse
                not lists:member(Version, ["4.0", "4.1", "4.2"]) of
                true -> ok;
                false -> error({import_failed, Version})
            end
    end.

version_supported(Data, Version) ->
    case {maps:get(<<"auth_clientid">>, Data, []), maps:get(<<"auth_username">>, Data, []),
          maps:get(<<"auth_mnesia">>, Data, [])} of
        {[], [], []} -> lists:member(Version, ?VERSIONS);
        _ -> version_supported2(Version)
    end.

version_supported2(V) when V =:= "4.1"; V =:= "4.3"; V =:= "4.4" -> true;
version_supported2(V) ->
    case re:run(V, "^4.[02].\\d+$", [{capture, none}]) of
        match ->
            case [list_to_integer(P) || P <- string:tokens(V, ".")] of
                [4, 2, N] -> N >= 11;
                [4, 0, N] -> N >= 13;
                _ -> false
            end;
        nomatch -> false
    end.

do_import(Data) ->
    [ignored(K, maps:get(K, Data, []))
     || K <- [<<"resources">>, <<"rules">>, <<"blacklist">>]],
    import_apps(maps:get(<<"apps">>, Data, [])),
    [ignored(K, maps:get(K, Data, []))
     || K <- [<<"users">>, <<"auth_clientid">>, <<"auth_username">>, <<"auth_mnesia">>,
              <<"acl_mnesia">>]],
    ok.

ignored(_, []) -> ok;
ignored(Key, List) ->
    emqx_double:say("[warning] data import: ~p entries of ~s ignored "
                    "(not emulated by this test double)", [length(List), Key]).

%% force_add_app for each: an existing id is overwritten. Every entry must
%% have the six keys (else the whole import fails, as 4.4.4's pattern match).
import_apps(Apps) ->
    lists:foreach(
      fun(#{<<"id">> := Id, <<"secret">> := Secret, <<"name">> := Name, <<"desc">> := Desc,
            <<"status">> := Status, <<"expired">> := Expired}) ->
              E = case is_integer(Expired) of true -> Expired; false -> undefined end,
              force_add_app(Id, Name, Secret, Desc, Status, E)
      end, Apps).
